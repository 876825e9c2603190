/** The OpenAI API's requests as gbt checks them, wherever they first arrive (gateway or node). */
export { jsonSchemaProblem } from "./json-schema-check.js";
export { chatRequestProblem, type RequestProblem, responsesRequestProblem } from "./request-checks.js";
