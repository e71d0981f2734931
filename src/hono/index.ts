// The hono adapter lands with the edge-integrations issue; the entry exists so the exports map builds.
export {};
