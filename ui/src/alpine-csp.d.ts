// @alpinejs/csp ships no types; the page uses only these two calls.
declare module '@alpinejs/csp' {
  interface Alpine {
    data(name: string, factory: () => object): void;
    start(): void;
  }
  const Alpine: Alpine;
  export default Alpine;
}

// esbuild bundles imported CSS into its own file.
declare module '*.css';
