/**
 * The journal's own types beyond the entry contract. The entry, its kinds and their data are in
 * ./contract.ts; AppendInput is re-exported here for the modules that import it from this file.
 */
export type { AppendInput } from './contract';

export interface Checkpoint {
  size: number;
  /** Hex Merkle root (RFC 6962) of the first `size` leaves. */
  root: string;
  /** The C2SP signed note. */
  note: string;
  createdAt: string;
}

export interface JournalHead {
  size: number;
  chain: string;
  root: string;
  lastCheckpoint: Checkpoint | null;
}

export interface JournalQuery {
  afterSeq?: number;
  limit?: number;
  kind?: string;
  actor?: string;
  subject?: string;
  from?: string;
  to?: string;
}
