// The engine's Interaction as an interaction route loaded it, for that request's one write of its
// result. The engine's interactionResult and interactionFinished look the interaction up again
// (its cookie, its row, the session it names) before they set the result; our routes have just
// done exactly that (steps.load, interactionDetails), within the same request. So the instance
// loaded then is kept for the request (a WeakMap keyed by node's request object) and written
// as the engine writes it: the result replaced (never merged), saved until the interaction
// expires, the browser sent on to returnTo.
//
// Handed out once: a second write in the same request, or a request that loaded nothing, goes
// through the engine's own lookup. The result is always replaced whole, and the engine changes
// nothing else in an interaction once it is made, so the row written is the one the engine would
// have written. Writes that merge with the last submission (consent.ts) still go through the engine.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';

type EngineInteraction = Awaited<ReturnType<Provider['interactionDetails']>>;

export interface LoadedInteractions {
  /** The engine's lookup of this request's interaction, keeping what it found for the request's write. */
  load(req: IncomingMessage, res: ServerResponse): Promise<EngineInteraction>;
  /** Replaces the interaction's result; where the browser goes next (the engine's interactionResult). */
  saveResult(req: IncomingMessage, res: ServerResponse, result: InteractionResults): Promise<string>;
  /** Replaces the result and sends the browser back to the engine (the engine's interactionFinished). */
  finish(req: IncomingMessage, res: ServerResponse, result: InteractionResults): Promise<void>;
}

export function createLoadedInteractions(provider: Provider): LoadedInteractions {
  const loaded = new WeakMap<IncomingMessage, EngineInteraction>();

  async function saveResult(req: IncomingMessage, res: ServerResponse, result: InteractionResults): Promise<string> {
    const interaction = loaded.get(req);
    if (!interaction) return provider.interactionResult(req, res, result, { mergeWithLastSubmission: false });
    loaded.delete(req);
    interaction.result = result;
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
    async finish(req, res, result) {
      const returnTo = await saveResult(req, res, result);
      res.statusCode = 303;
      res.setHeader('Location', returnTo);
      res.setHeader('Content-Length', '0');
      res.end();
    },
  };
}
