/** Every workflow: the one `workflowsPath` of the workers. Deterministic code only (see eslint.config.mjs). */
export { smokeWorkflow } from './smoke';
export { fleetLockWorkflow } from './fleet-lock';
export { modelLifecycleWorkflow } from './lifecycle';
export { nightlyRetrainWorkflow } from './nightly';
export { prepareDataWorkflow } from './data-smoke';
export { hyperparameterSearchWorkflow } from './hyperparameter-search';
