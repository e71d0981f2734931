/** Cold-start baseline: a worker that does nothing (workerd start-up and dispatch only). */
export default {
  async fetch(): Promise<Response> {
    return new Response('ok');
  },
};
