import { z } from 'zod';
import { NotFoundError } from '../../errors/errors';
import { SignalBodySchema, SignalResultSchema } from '../../signals/types';
import type { ApiDeps } from '../app';
import { endpoint, implement, reply, type ApiModule } from '../registry';

const endpoints = {
  receive: endpoint({
    id: 'receiveSignal',
    method: 'POST',
    path: '/v1/signals',
    tag: 'Signals',
    summary: 'An event from another system (a predicted failure, a churn risk); standing rules turn it into objectives',
    description:
      'Takes an integration key (a user with the admin role holds signal.submit). Validated, deduplicated by id, journaled (signal.received / signal.refused). The rules in policies/signals map its type to playbook objectives for twins. The same id with the same content again returns the first result (200, Idempotent-Replayed); with different content it is a conflict. Also takes a structured CloudEvent 1.0 (Content-Type: application/cloudevents+json): id, type, source, time and data (a JSON object) become the signal\'s id, type, source, occurredAt and payload; one without id or type is refused (400, journaled).',
    access: { capabilities: ['signal.submit'] },
    body: SignalBodySchema,
    bodyCheckedBy: 'service',
    responses: {
      201: { description: 'Received; the objectives it started', schema: SignalResultSchema },
      200: { description: 'A repeat of an id already received: the first result', schema: SignalResultSchema },
    },
    errors: { 409: 'The id was used for different content, or a rule names a twin that cannot take the objective' },
  }),
  get: endpoint({
    id: 'getSignal',
    method: 'GET',
    path: '/v1/signals/:id',
    tag: 'Signals',
    summary: 'What became of a signal',
    access: { capabilities: ['signal.submit'] },
    params: z.object({ id: z.string().describe('The sender’s signal id') }).strict(),
    responses: { 200: { description: 'The result', schema: SignalResultSchema } },
    errors: { 404: 'No signal with that id' },
  }),
};

/** Signals from other systems. */
export const signalApi: ApiModule = {
  name: 'signals',
  endpoints: Object.values(endpoints),
  available: (deps) => deps.signals !== undefined,
  bind(deps: ApiDeps) {
    const signals = deps.signals!;
    return [
      implement(endpoints.receive, async ({ body }, req) => {
        const { created, result } = req.is('application/cloudevents+json')
          ? await signals.receiveCloudEvent(body, req.principal.ref)
          : await signals.receive(body, req.principal.ref);
        return created ? reply(201, result) : reply(200, result, { 'Idempotent-Replayed': 'true' });
      }),
      implement(endpoints.get, async ({ params }) => {
        const r = await signals.get(params.id);
        if (!r) throw new NotFoundError(`no signal ${params.id} was received`);
        return r;
      }),
    ];
  },
};

