/**
 * `%provenance save` typed in a cell: the kernel asks the front end to save the
 * notebook first, over comms to the target `scandeck.frontend` (the kernel side
 * is scandeck/provenance/frontend.py).
 *
 * The target is registered on the kernel of every notebook panel, and again when
 * a panel's kernel changes. A comm opened by `%load_ext scandeck` is a probe,
 * answered `{ready: true}`; a comm whose open message says `{request: 'save'}`
 * saves the panel's notebook, as the Scans panel's button does before it records.
 * The kernel watches the file (it cannot read answers while its cell runs), so
 * the answer `{saved, ok, error}` only documents the outcome for other clients.
 */
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';

/** The comm target; the kernel's `scandeck.provenance.frontend.TARGET`. */
export const SAVE_COMM_TARGET = 'scandeck.frontend';

/** What the kernel's open message carries: a probe, or a request to save. */
export interface ISaveRequest {
  version?: number;
  request?: string;
  id?: number;
}

/** Whether a comm's open message asks for a save (anything else is a probe). */
export function isSaveRequest(data: unknown): boolean {
  return typeof data === 'object' && data !== null && (data as ISaveRequest).request === 'save';
}

/** The comm target's handler for one notebook: `save` saves that notebook. */
export function saveHandler(
  save: () => Promise<void>
): (comm: Kernel.IComm, msg: KernelMessage.ICommOpenMsg) => Promise<void> {
  return async (comm, msg) => {
    const data = msg.content.data as ISaveRequest;
    if (!isSaveRequest(data)) {
      comm.send({ ready: true });
      return;
    }
    try {
      await save();
      comm.send({ saved: data.id ?? null, ok: true });
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      console.warn(`scandeck: saving the notebook for %provenance save failed: ${text}`);
      comm.send({ saved: data.id ?? null, ok: false, error: text });
    }
  };
}

/** Register the save target on the kernel of every notebook, now and later. */
export function registerSaveComm(tracker: INotebookTracker): void {
  const watch = (panel: NotebookPanel): void => {
    const register = (kernel: Kernel.IKernelConnection | null | undefined): void => {
      kernel?.registerCommTarget(
        SAVE_COMM_TARGET,
        saveHandler(async () => {
          await panel.context.ready;
          await panel.context.save();
        })
      );
    };
    register(panel.sessionContext.session?.kernel);
    panel.sessionContext.kernelChanged.connect((_, change) => register(change.newValue));
  };
  tracker.forEach(watch);
  tracker.widgetAdded.connect((_, panel) => watch(panel));
}
