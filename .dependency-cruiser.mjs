// Which part may import which: one tool, dependency-cruiser, checks the import directions of
// every part. test/imports.test.ts runs it (npm test and test:unit) and proves each rule
// bites; `npx depcruise --config .dependency-cruiser.mjs functions contracts server-kit ui
// scripts bench test knative` shows the same from a shell. Type-only imports and lazy
// import() count: they tie modules together just the same for a reader.

const FN = '^functions/classify/src/';
/** The transports and the wiring above them; everything else under src/ is the core. */
const TRANSPORTS = `${FN}(http/|events/|server\\.ts$|main\\.ts$)`;
/** What runs in production (the page, both servers, what they share); tests and tools are apart. */
const PRODUCTION = '^(functions/classify/src|ui/src|ui/server|server-kit|contracts)/';
const TESTS_AND_TOOLS = '(^|/)test/|^bench/|^scripts/';

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycle anywhere: an interface imports no implementation, and a module no module that imports it back.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'contracts-import-nothing',
      severity: 'error',
      comment: 'contracts/ is loaded by the page, both servers and the scripts: it imports only itself.',
      from: { path: '^contracts/', pathNot: '^contracts/test/' },
      to: { pathNot: '^contracts/' },
    },
    {
      name: 'core-not-transports',
      severity: 'error',
      comment: 'The core (bytes → predictions) knows no transport: neither HTTP nor CloudEvents, nor the server that wires them.',
      from: { path: FN, pathNot: TRANSPORTS },
      to: { path: TRANSPORTS },
    },
    {
      name: 'events-not-http',
      severity: 'error',
      comment: 'events/ speaks error codes; the HTTP adapter (http/events.ts) decides statuses.',
      from: { path: `${FN}events/` },
      to: { path: `${FN}http/` },
    },
    {
      name: 'decode-budget-not-model',
      severity: 'error',
      comment: 'The decode budget knows libjpeg and sharp, not the model: the output size is a parameter.',
      from: { path: `${FN}decode-budget\\.ts$` },
      to: { path: `${FN}model/` },
    },
    {
      name: 'model-description-imports-nothing',
      severity: 'error',
      comment: 'model/mobilenet.ts is constants: any module can import it without loading a runtime or the downloader.',
      from: { path: `${FN}model/mobilenet\\.ts$` },
      to: {},
    },
    {
      name: 'engine-interface-no-implementation',
      severity: 'error',
      comment: 'engines/engine.ts is the interface: it imports no engine, only the config types.',
      from: { path: `${FN}engines/engine\\.ts$` },
      to: { pathNot: `${FN}config\\.ts$` },
    },
    {
      name: 'classifier-not-downloader',
      severity: 'error',
      comment: 'The core takes the model facts from the description, not from the downloader.',
      from: { path: `${FN}classifier\\.ts$` },
      to: { path: `${FN}model/(prepare|assets)\\.ts$` },
    },
    {
      name: 'page-no-node',
      severity: 'error',
      comment: 'The page runs in a browser: no Node built-in modules.',
      from: { path: '^ui/src/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'page-only-contracts',
      severity: 'error',
      comment: 'The page and the servers share only contracts/.',
      from: { path: '^ui/src/' },
      to: { path: '^(ui/server|server-kit|functions|scripts|bench|test)/' },
    },
    {
      name: 'server-not-page',
      severity: 'error',
      comment: 'The UI server imports no browser code, not even a type.',
      from: { path: '^(ui/server|server-kit|functions)/' },
      to: { path: '^ui/src/' },
    },
    {
      name: 'servers-apart',
      severity: 'error',
      comment: 'The function and the UI server share server-kit/ and contracts/, nothing else.',
      from: { path: '^(functions|ui/server)/', pathNot: TESTS_AND_TOOLS },
      to: { path: '^(functions|ui/server)/', pathNot: '^$1/' },
    },
    {
      name: 'server-kit-shared-only',
      severity: 'error',
      comment: 'server-kit/ serves both servers: it imports neither of them.',
      from: { path: '^server-kit/', pathNot: '^server-kit/test/' },
      to: { path: '^(functions|ui|scripts|bench)/' },
    },
    {
      name: 'production-not-tests',
      severity: 'error',
      comment: 'What ships imports no test, benchmark or script.',
      from: { path: PRODUCTION, pathNot: TESTS_AND_TOOLS },
      to: { path: TESTS_AND_TOOLS },
    },
    {
      name: 'production-not-dev-dependencies',
      severity: 'error',
      comment:
        'What runs on the servers needs only production dependencies (the image installs no others). The page is bundled, so it may use devDependencies; ' +
        'worker-tsx.mjs only runs the workers from source, under tsx; decoder-source.ts only bundles the decoder process from source.',
      from: { path: '^(functions/classify/src|ui/server|server-kit|contracts)/', pathNot: `${TESTS_AND_TOOLS}|worker-tsx\\.mjs$|decoder-source\\.ts$` },
      to: { dependencyTypes: ['npm-dev'] },
    },
    {
      name: 'resolvable',
      severity: 'error',
      comment: 'Every import resolves.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // TypeScript 7 has no JavaScript API for dependency-cruiser to parse with: swc parses.
    parser: 'swc',
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|\\.cache|artifacts|bench/results)/' },
    // Resolve `pkg/sub.js` and the `exports` of packages as Node's ESM loader does.
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'node', 'default', 'types'] },
  },
};
