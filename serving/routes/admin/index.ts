/**
 * The admin API under `/v1/admin`, behind one bearer-token hook (serving/plugins/external.ts `adminAuth`):
 * the fleet's desired state, this replica's counters, injected faults.
 */
import type { FastifyInstance } from 'fastify';
import { adminAuth, type AdminAuthOptions } from '../../plugins/external';
import { faultRoutes } from './faults';
import { fleetRoutes } from './fleet';
import { statsRoutes } from './stats';

export async function adminRoutes(app: FastifyInstance, opts: AdminAuthOptions): Promise<void> {
  await adminAuth(app, opts);
  await app.register(fleetRoutes);
  await app.register(statsRoutes);
  await app.register(faultRoutes);
}
