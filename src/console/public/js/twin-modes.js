// A twin's modes, from least to most autonomy: the value, its label, and what it means.
export const MODES = [
  ['propose', 'Propose', 'Records what it would do; nothing runs until a person acts.'],
  ['approve', 'Approve', 'Asks the named approvers before anything runs.'],
  ['execute', 'Execute', 'Acts at once within its authority; auditors review afterwards. Policy can still ask for approval.'],
];
export const MODE_RANK = { propose: 0, approve: 1, execute: 2 };
