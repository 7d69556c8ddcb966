/**
 * An outgoing email as an action: the input both the SMTP connector and the sandbox's
 * `sandbox.email.send` take, and the risk attributes the policy sees for it.
 */
import { z } from 'zod';
import type { RiskAttributes } from './types';

export const DATA_CLASSES = ['public', 'internal', 'confidential', 'restricted'] as const;

const Address = z.email({ error: (iss) => `${JSON.stringify(iss.input)} is not an email address` }).max(254);

export const MessageInput = z
  .object({
    to: z.array(Address).min(1).max(50).describe('Recipients'),
    cc: z.array(Address).max(50).optional().describe('Copy recipients'),
    subject: z
      .string()
      .min(1)
      .max(250)
      .refine((s) => !/[\r\n]/.test(s), { error: 'a subject is one line' }),
    body: z.string().max(100_000).describe('Plain text'),
    dataClass: z.enum(DATA_CLASSES).describe('The most sensitive data in the message; policy decides who may send what'),
  })
  .strict();

export type Message = z.infer<typeof MessageInput>;

export const messageJsonSchema = z.toJSONSchema(MessageInput) as Record<string, unknown>;

const domainOf = (address: string) => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

/** recipients (to and cc), their domains, the data class, and the first recipient's domain as counterparty. */
export function messageAttributes(input: Record<string, unknown>): RiskAttributes {
  const m = input as Message;
  const recipients = [...m.to, ...(m.cc ?? [])].map((a) => a.toLowerCase());
  const recipientDomains = [...new Set(recipients.map(domainOf))];
  return { recipients, recipientDomains, dataClass: m.dataClass, counterparty: recipientDomains[0] };
}
