// The engine's Interaction as an interaction route loaded it, for that request's one write of its
// result. The engine's interactionResult and interactionFinished look the interaction up again
// (its cookie, its row, the session it names) before they set the result; our routes have just
// done exactly that (steps.load, interactionDetails), within the same request. So the instance
// loaded then is kept for the request (a WeakMap keyed by node's request object) and written
// as the engine writes it: the result replaced (or merged with the last submission, as the
// engine merges it), saved until the interaction expires, the browser sent on to returnTo.
//
// Handed out once: a second write in the same request, or a request that loaded nothing, goes
// through the engine's own lookup. Only the result is written, and the engine changes nothing
// else in an interaction once it is made, so the row written is the one the engine would have
// written.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';

type EngineInteraction = Awaited<ReturnType<Provider['interactionDetails']>>;

/** The engine's mergeWithLastSubmission, false unless asked (our login steps replace the result whole). */
export interface WriteOptions {
  merge?: boolean;
}

export interface LoadedInteractions {
  /** The engine's lookup of this request's interaction, keeping what it found for the request's write. */
  load(req: IncomingMessage, res: ServerResponse): Promise<EngineInteraction>;
  /** Replaces the interaction's result (`merge`: merges it with the last submission); where the browser goes next (the engine's interactionResult). */
  saveResult(req: IncomingMessage, res: ServerResponse, result: InteractionResults, options?: WriteOptions): Promise<string>;
  /** Writes the result and sends the browser back to the engine (the engine's interactionFinished). */
  finish(req: IncomingMessage, res: ServerResponse, result: InteractionResults, options?: WriteOptions): Promise<void>;
}

export function createLoadedInteractions(provider: Provider): LoadedInteractions {
  const loaded = new WeakMap<IncomingMessage, EngineInteraction>();

  async function saveResult(req: IncomingMessage, res: ServerResponse, result: InteractionResults, { merge = false }: WriteOptions = {}): Promise<string> {
    const interaction = loaded.get(req);
    if (!interaction) return provider.interactionResult(req, res, result, { mergeWithLastSubmission: merge });
    loaded.delete(req);
    interaction.result = merge && !('error' in result) ? { ...interaction.lastSubmission, ...result } : result;
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
    return interaction.returnTo;
  }

  return {
    async load(req, res) {
      const interaction = await provider.interactionDetails(req, res);
      loaded.set(req, interaction);
      return interaction;
    },
    saveResult,
    async finish(req, res, result, options) {
      const returnTo = await saveResult(req, res, result, options);
      res.statusCode = 303;
      res.setHeader('Location', returnTo);
      res.setHeader('Content-Length', '0');
      res.end();
    },
  };
}
