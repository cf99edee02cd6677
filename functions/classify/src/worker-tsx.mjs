// Development only: Node 20 does not apply the parent's tsx loader hooks inside worker
// threads, so a worker started from the TypeScript sources registers tsx itself first.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
