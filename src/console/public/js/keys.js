// Keyboard shortcuts: the help dialog (?) and the inbox's keys.
import { h } from './dom.js';
import { dataTable, formDialog } from './ui.js';

export const INBOX_KEYS = [
  ['j', 'Next proposal'],
  ['k', 'Previous proposal'],
  ['a', 'Approve the current proposal'],
  ['r', 'Reject the current proposal (asks for a reason)'],
  ['e', 'Edit the current proposal’s arguments'],
  ['x', 'Select or unselect the current proposal'],
  ['?', 'Show this help'],
];

export function shortcutsHelp(view) {
  const rows = view === 'inbox' ? INBOX_KEYS : [['?', 'Show this help']];
  return formDialog({
    title: 'Keyboard shortcuts',
    content: [
      dataTable(
        'Keyboard shortcuts',
        ['Key', 'Action'],
        rows.map(([k, what]) => h('tr', null, h('td', null, h('kbd', null, k)), h('td', null, what))),
        'keys',
      ),
      view === 'inbox'
        ? null
        : h('p', { class: 'hint' }, 'The inbox has more: j/k to move, a/r/e to approve, reject or edit, x to select.'),
      h('p', { class: 'hint' }, 'Shortcuts are off while you type in a field or a dialog is open. Tab and Enter work everywhere.'),
    ],
    submitLabel: null,
    cancelLabel: 'Close',
  });
}
