// Starts @vercel/cosmosdb-server (Cosmos DB REST API, in memory) over HTTPS
// with its self-signed certificate on 127.0.0.1:PORT, keeping connections
// alive as Cosmos DB does. Usage: node tests/servers/cosmos.js PORT
//
// Two fixes are applied to version 1.0.1 before it starts:
//
//   - Reading a document that does not exist in the given partition answers
//     500 (a TypeError in handler/read-document.js) where Cosmos DB answers
//     404 NotFound. The fix answers 404 for exactly that case and leaves
//     every other request to the server's own handler.
//   - Transactional batches (x-ms-cosmos-batch-atomic) carry their
//     partition key in the request header only, and Cosmos DB commits them
//     whole or not at all; the server's batch handler reads a partition key
//     from each operation and commits as it goes. The fix gives each
//     operation the header's key and checks every operation's condition
//     (ifMatch of a replace, absence for a create) before any is applied: a
//     failing one answers 207 Multi-Status with its status and 424 for the
//     others, as Cosmos DB does, and nothing is written.
"use strict";

const readDocument = require("@vercel/cosmosdb-server/lib/handler/read-document");
const {
  default: partitionFromHeader,
  parsePartitionKey
} = require("@vercel/cosmosdb-server/lib/utils/get-partition-from-header");

const serverReadDocument = readDocument.default;
// routes.js takes the handler when it is first loaded, so this must run
// before the package's main module is required.
readDocument.default = (account, req, res, params) => {
  const collection = account.database(params.dbId).collection(params.collId);
  const header = partitionFromHeader(req);
  if (collection.read() && header) {
    const key = parsePartitionKey(header, params.docId);
    if (!collection.document(params.docId, key).read()) {
      res.statusCode = 404;
      return {
        code: "NotFound",
        message: "Entity with the specified id does not exist in the system."
      };
    }
  }
  return serverReadDocument(account, req, res, params);
};

const json = require("@vercel/cosmosdb-server/lib/json");
const batchDocuments = require("@vercel/cosmosdb-server/lib/handler/batch-documents");

// The batch handler reads the body through json.default; a body read
// already (below) is handed over again.
const readJSON = json.default;
json.default = async (req) => (req.palisadeBody !== undefined ? req.palisadeBody : readJSON(req));

const serverBatch = batchDocuments.default;
batchDocuments.default = async (account, req, res, params) => {
  const atomic = String(req.headers["x-ms-cosmos-batch-atomic"] || "").toLowerCase() === "true";
  const header = partitionFromHeader(req);
  const body = await readJSON(req);
  req.palisadeBody = body;
  const collection = account.database(params.dbId).collection(params.collId);
  if (!atomic || !header || !Array.isArray(body) || !collection.read()) {
    return serverBatch(account, req, res, params);
  }
  for (const op of body) {
    if (op && op.partitionKey === undefined) {
      op.partitionKey = header;
    }
  }
  const failing = body.findIndex((op) => {
    const id = op && (op.id || (op.resourceBody && op.resourceBody.id));
    const doc = id ? collection.document(id, parsePartitionKey(header, id)).read() : null;
    switch (op && op.operationType) {
      case "Create":
        return doc ? 409 : 0;
      case "Replace":
        return !doc ? 404 : op.ifMatch && op.ifMatch !== doc._etag ? 412 : 0;
      case "Upsert":
        return doc && op.ifMatch && op.ifMatch !== doc._etag ? 412 : 0;
      default:
        return 0;
    }
  });
  if (failing < 0) {
    return serverBatch(account, req, res, params);
  }
  const op = body[failing];
  const id = op.id || op.resourceBody.id;
  const doc = collection.document(id, parsePartitionKey(header, id)).read();
  const status = op.operationType === "Create" ? 409 : !doc ? 404 : 412;
  res.statusCode = 207;
  return body.map((_, i) => ({ statusCode: i === failing ? status : 424, requestCharge: 0 }));
};

const { createHttpsServer } = require("@vercel/cosmosdb-server");

const port = Number.parseInt(process.argv[2], 10);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: node cosmos.js PORT");
  process.exit(2);
}
const server = createHttpsServer({ keepAlive: true });
server.listen(port, "127.0.0.1", () => {
  console.log(`cosmosdb-server ready on https://127.0.0.1:${port}/`);
});
