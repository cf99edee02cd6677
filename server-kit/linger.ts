// Staged closes (RFC 9112 §9.6). Node closes a `Connection: close` socket as soon as the
// answer is handed to the kernel, and a socket closed with unread upload data is reset at
// once, which can drop the answer (a 413, a 408) before the client has read it: a client
// still uploading missed it in 4 to 16 tries of 20. So the close is staged: half-close after
// the answer, then reset `lingerMs` later, or sooner if the client closes first.
import type { Socket } from 'node:net';

/** How long a connection stays half-closed after its last answer before it is reset. */
export const LINGER_MS = 2000;

/** Makes Node's close-after-answer on this socket a half-close followed by a later reset. */
export function stageClose(socket: Socket, lingerMs = LINGER_MS): void {
  socket.destroySoon = () => {
    socket.end();
    setTimeout(() => socket.destroy(), lingerMs).unref();
  };
}
