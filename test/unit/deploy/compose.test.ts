/**
 * docker-compose.yml cannot be run here (no Docker engine): parse it and check what Docker would check first, and
 * what would break at run time: services, images or builds, ports, volumes, health checks, every referenced file,
 * and that each recflow service runs a command the CLI really has.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { buildProgram } from '../../../clients/cli';
import { ServingMetrics } from '../../../serving/metrics';

const root = join(__dirname, '..', '..', '..');

interface Service {
  image?: string;
  build?: string | { context: string; dockerfile?: string; args?: Record<string, string> };
  command?: string[];
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }> | string[];
  profiles?: string[];
  environment?: Record<string, string>;
}

const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true, maxAliasCount: 1000 }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};

describe('docker-compose.yml', () => {
  const services = compose.services;

  it('has the services of a deployment', () => {
    for (const name of [
      'postgresql',
      'temporal',
      'temporal-ui',
      'worker-cpu',
      'worker-gpu',
      'serving-1',
      'serving-2',
      'prometheus',
      'grafana',
    ]) {
      assert.ok(services[name], `service ${name} is missing`);
    }
    assert.deepEqual(services['worker-gpu']!.profiles, ['gpu']);
  });

  it('every service has an image or a build whose Dockerfile exists', () => {
    for (const [name, s] of Object.entries(services)) {
      assert.ok(s.image || s.build, `${name}: neither image nor build`);
      if (s.build) {
        const ctx = typeof s.build === 'string' ? s.build : s.build.context;
        const file = typeof s.build === 'string' ? 'Dockerfile' : (s.build.dockerfile ?? 'Dockerfile');
        assert.ok(existsSync(join(root, ctx, file)), `${name}: ${join(ctx, file)} does not exist`);
      }
    }
  });

  it('host ports are unique and well-formed', () => {
    const seen = new Map<string, string>();
    for (const [name, s] of Object.entries(services)) {
      for (const p of s.ports ?? []) {
        const m = /^(\d+):(\d+)$/.exec(p);
        assert.ok(m, `${name}: port '${p}' is not HOST:CONTAINER`);
        assert.ok(!seen.has(m[1]!), `${name}: host port ${m[1]} already used by ${seen.get(m[1]!)}`);
        seen.set(m[1]!, name);
      }
    }
  });

  it('bind mounts point at files in the repository; named volumes are declared', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        const [src] = v.split(':');
        if (src!.startsWith('.')) assert.ok(existsSync(join(root, src!)), `${name}: ${src} does not exist`);
        else assert.ok(src! in compose.volumes, `${name}: volume ${src} is not declared`);
      }
    }
  });

  it('depends_on names existing services, and service_healthy ones have a health check', () => {
    for (const [name, s] of Object.entries(services)) {
      const deps = Array.isArray(s.depends_on)
        ? s.depends_on.map((d) => [d, 'service_started'])
        : Object.entries(s.depends_on ?? {}).map(([d, c]) => [d, c.condition]);
      for (const [dep, cond] of deps) {
        assert.ok(services[dep!], `${name} depends on unknown service ${dep}`);
        if (cond === 'service_healthy') assert.ok(services[dep!]!.healthcheck, `${dep} has no healthcheck`);
      }
    }
  });

  it('recflow services run commands and options the CLI has', () => {
    const program = buildProgram();
    for (const [name, s] of Object.entries(services)) {
      if (s.image !== 'recflow:local' && s.image !== 'recflow:local-gpu') continue;
      const [cmd, ...args] = s.command ?? [];
      if (cmd === '--help') continue;
      const sub = program.commands.find((c) => c.name() === cmd);
      assert.ok(sub, `${name}: 'recflow ${cmd}' is not a command`);
      const flags = new Set(sub.options.flatMap((o) => [o.long, o.short].filter(Boolean) as string[]));
      for (const a of args.filter((x) => x.startsWith('--')))
        assert.ok(flags.has(a), `${name}: ${cmd} has no option ${a}`);
      assert.equal(s.environment?.TEMPORAL_ADDRESS, 'temporal:7233', `${name}: TEMPORAL_ADDRESS`);
    }
  });

  it('Prometheus scrapes the serving replicas', () => {
    const prom = parse(readFileSync(join(root, 'deploy', 'prometheus.yml'), 'utf8')) as {
      scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }>;
    };
    const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    for (const t of targets) assert.ok(services[t.split(':')[0]!], `scrape target ${t} is not a service`);
  });

  it('Grafana dashboards query metrics the serving replicas export', async () => {
    const exported = (await new ServingMetrics({ processMetrics: false }).registry.getMetricsAsJSON()).map(
      (m) => m.name,
    );
    const dash = JSON.parse(
      readFileSync(join(root, 'deploy', 'grafana', 'dashboards', 'recflow-serving.json'), 'utf8'),
    ) as {
      panels: Array<{ targets: Array<{ expr: string }> }>;
    };
    const used = new Set(
      dash.panels
        .flatMap((p) => p.targets.flatMap((t) => t.expr.match(/recflow_[a-z_]+/g) ?? []))
        .map((n) => n.replace(/_bucket$/, '')),
    );
    assert.ok(used.size >= 5);
    for (const name of used)
      assert.ok(exported.includes(name), `dashboard uses ${name}, which serving does not export`);
  });
});
