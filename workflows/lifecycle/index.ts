export * from './legacy';
