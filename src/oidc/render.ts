// How the engine's configuration reaches our pages: views live with the HTTP layer, which
// hands this function in at the composition root.
export type RenderPage = (view: string, locals: Record<string, unknown>) => Promise<string>;
