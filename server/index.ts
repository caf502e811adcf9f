// `redblue serve`: an OpenAI-compatible HTTP server in front of the executors.
//  1. openai.ts: request bodies checked field by field; replies and stream chunks.
//  2. http.ts: routes, server-sent events, the API key, one queue in front of the model.
//  3. metrics.ts: GET /metrics in Prometheus' text format.
//  4. serve.ts: the executors started, the model loaded, the server run until SIGTERM/SIGINT.
export {};
