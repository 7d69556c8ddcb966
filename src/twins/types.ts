import { z } from 'zod';
import { IdSchema } from '../people/types';
import { MODES, type Mode } from '../policy/types';

export interface Twin {
  id: string;
  /** `user:<id>`: the executive the twin works for. */
  owner: string;
  /** Id of the authority document it acts under. */
  authority: string;
  mode: Mode;
  /** Its own kill switch. */
  killed: boolean;
  createdAt: string;
  updatedAt: string;
}

export const ModeSchema = z.enum(MODES);

export const NewTwinSchema = z
  .object({
    id: IdSchema,
    owner: z.string().regex(/^user:[a-z0-9][a-z0-9._@-]{0,63}$/, 'must be user:<id>'),
    authority: z.string().min(1).max(200),
    // The least power when none is named: a new twin only records what it would do.
    mode: ModeSchema.default('propose'),
  })
  .strict();

export type NewTwin = z.input<typeof NewTwinSchema>;

export interface KillSwitchState {
  /** The global switch: engaged stops all execution. */
  engaged: boolean;
  updatedBy: string;
  updatedAt: string;
  /** Twins whose own switch is engaged (among those the caller may see). */
  twins: string[];
}
