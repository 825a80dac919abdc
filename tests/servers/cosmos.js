// Starts @vercel/cosmosdb-server (Cosmos DB REST API, in memory) over HTTPS
// with its self-signed certificate on 127.0.0.1:PORT, keeping connections
// alive as Cosmos DB does. Usage: node tests/servers/cosmos.js PORT
//
// Four fixes are applied to version 1.0.1 before it starts:
//
// - Reading a document that does not exist in the given partition answers
//   500 (a TypeError in handler/read-document.js) where Cosmos DB answers
//   404 NotFound. The fix answers 404 for exactly that case and leaves every
//   other request to the server's own handler.
// - A document write with "Prefer: return=minimal" (what the Go SDK sends
//   unless content responses are asked for) answers with the document where
//   Cosmos DB answers with headers only (the ETag among them). The fix sends
//   the headers and no body.
// - The server ignores time to live. Cosmos DB, in a container with
//   defaultTtl set, treats a document whose "ttl" (or the container's
//   positive defaultTtl) has passed since its last write (_ts) as deleted:
//   reads, queries and writes no longer see it. The fix deletes such
//   documents before every operation on a container that has any.
// - Transactional batches (x-ms-cosmos-batch-atomic) carry their partition
//   key in the request header only, and Cosmos DB commits them whole or not
//   at all; the server's batch handler reads a partition key from each
//   operation (so a replace fails with 500) and commits as it goes. The fix
//   gives each operation the header's key and checks every operation's
//   condition (ifMatch of a replace or upsert, existence for a replace,
//   absence for a create) before any is applied: a failing one answers 207
//   Multi-Status with its status and 424 for the others, as Cosmos DB does,
//   and nothing is written.
//   A batch sent with "Prefer: return=minimal" (the Go SDK's default) is
//   answered, as Cosmos DB does, without the documents of its writes.
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

const Items = require("@vercel/cosmosdb-server/lib/account/items").default;

// expire deletes the documents of items whose time to live has passed.
function expire(items) {
  if (!items._mayExpire || items._expiring) return;
  const parent = items._parent && items._parent.read ? items._parent.read() : null;
  if (!parent || parent.defaultTtl === undefined || parent.defaultTtl === null) return;
  const now = Math.floor(Date.now() / 1000);
  items._expiring = true;
  try {
    for (const item of [...items._data.values()]) {
      const data = item.read();
      const ttl = data && data.ttl !== undefined ? data.ttl : parent.defaultTtl;
      if (data && typeof ttl === "number" && ttl > 0 && now >= data._ts + ttl) {
        items.delete(data.id, items._getPartition(data));
      }
    }
  } finally {
    items._expiring = false;
  }
}

const serverSet = Items.prototype._set;
Items.prototype._set = function (data) {
  const parent = this._parent && this._parent.read ? this._parent.read() : null;
  if ((data && typeof data.ttl === "number" && data.ttl > 0) || (parent && parent.defaultTtl > 0)) {
    this._mayExpire = true;
  }
  return serverSet.call(this, data);
};
for (const name of ["create", "delete", "query", "read", "replace", "upsert", "_item"]) {
  const serverMethod = Items.prototype[name];
  Items.prototype[name] = function (...args) {
    expire(this);
    return serverMethod.apply(this, args);
  };
}

// Writes answer with headers only when the client prefers it. The server
// sets the ETag header from the document it returns, then ends the response
// with it; the wrapped end drops the body.
for (const name of ["create-document", "upsert-document", "replace-document"]) {
  const mod = require(`@vercel/cosmosdb-server/lib/handler/${name}`);
  const handler = mod.default;
  mod.default = async (account, req, res, params) => {
    const body = await handler(account, req, res, params);
    if (res.statusCode < 300 && /return=minimal/i.test(req.headers.prefer || "")) {
      const end = res.end.bind(res);
      res.end = () => end();
    }
    return body;
  };
}

const json = require("@vercel/cosmosdb-server/lib/json");
const batchDocuments = require("@vercel/cosmosdb-server/lib/handler/batch-documents");

// The batch handler reads the body through json.default; a body read
// already (below) is handed over again.
const readJSON = json.default;
json.default = async (req) => (req.palisadeBody !== undefined ? req.palisadeBody : readJSON(req));

const serverBatch = batchDocuments.default;

// minimal drops the documents of a batch's writes from its results when the
// client prefers a minimal answer; reads keep theirs.
function minimal(req, ops, results) {
  if (!Array.isArray(results) || !Array.isArray(ops) || !/return=minimal/i.test(req.headers.prefer || "")) {
    return results;
  }
  return results.map((result, i) => {
    if (!result || (ops[i] && ops[i].operationType === "Read")) return result;
    const { resourceBody, ...rest } = result;
    return rest;
  });
}
batchDocuments.default = async (account, req, res, params) => {
  const atomic = String(req.headers["x-ms-cosmos-batch-atomic"] || "").toLowerCase() === "true";
  const header = partitionFromHeader(req);
  const body = await readJSON(req);
  req.palisadeBody = body;
  const collection = account.database(params.dbId).collection(params.collId);
  if (!atomic || !header || !Array.isArray(body) || !collection.read()) {
    return minimal(req, body, await serverBatch(account, req, res, params));
  }
  for (const op of body) {
    if (op && op.partitionKey === undefined) {
      op.partitionKey = header;
    }
  }
  // The status an operation fails with before anything is applied, 0 when
  // its condition holds.
  const statuses = body.map((op) => {
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
  const failing = statuses.findIndex((status) => status !== 0);
  if (failing < 0) {
    return minimal(req, body, await serverBatch(account, req, res, params));
  }
  res.statusCode = 207;
  return body.map((_, i) => ({ statusCode: i === failing ? statuses[i] : 424, requestCharge: 0 }));
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
