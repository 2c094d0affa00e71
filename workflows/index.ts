/** Every workflow: the one `workflowsPath` of the workers. Deterministic code only (see eslint.config.mjs). */
export { smokeWorkflow } from './smoke';
export { hyperparameterSearchWorkflow } from './hyperparameter-search';
