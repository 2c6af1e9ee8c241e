/**
 * Loaded into Portkey's process by the bench (`node --import`): Portkey 1.15 appends to the headers of
 * the `fetch` Response of a streamed custom-host reply, and on Node 20 those headers are immutable, so
 * every streamed request fails with HTTP 500. Event streams are handed to it as a Response with the same
 * status, headers and body, whose headers it may change; every other reply is left untouched.
 */
const fetchOf = globalThis.fetch;
globalThis.fetch = async (...args) => {
  const res = await fetchOf(...args);
  if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) return res;
  return new Response(res.body, {
    status: res.status,
    statusText: res.statusText,
    headers: new Headers(res.headers),
  });
};
