/** The node API: paths, request and response schemas, and its typed client. */
export {};
