#!/usr/bin/env node
// The embedded stack's local S3: s3rver, with PUTs made atomic as they are on S3 and MinIO.
//
// s3rver's filesystem store truncates an object's file and then streams the new body into it.
// A reader in between sees an empty object, and a PUT cut short (its client killed, e.g. the
// broker under `kill -9`) leaves a truncated object for good: Tansu then fails to parse that
// partition's watermark.json on every fetch. Here every file of an object (body, md5, metadata)
// is written to a temporary file in the same directory and renamed over the old one, so readers
// see the old or the new object, never part of one.
//
// It also honours conditional writes (PUT with If-None-Match: * or If-Match: <etag>), as S3 has
// since 2024. Stock s3rver ignores both headers, and Tansu builds every read-modify-write of its
// shared state on them (the partition watermark that hands out offsets, the producer sequences):
// without them two producers on one partition were acknowledged the same offsets and one
// overwrote the other's records. Takes s3rver's own command-line options.
'use strict';

const crypto = require('crypto');
const { createWriteStream } = require('fs');
const fs = require('fs/promises');
const path = require('path');
const { Transform, pipeline } = require('stream');
const FilesystemStore = require('s3rver/lib/stores/filesystem');
const objectController = require('s3rver/lib/controllers/object');
const S3Error = require('s3rver/lib/models/error');
const S3Object = require('s3rver/lib/models/object');

function temporaryPath(target) {
  // Not ending in "._S3rver_object", so listings never show it.
  return `${target}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.partial`;
}

async function replaceAtomically(target, write) {
  const temporary = temporaryPath(target);
  try {
    await write(temporary);
    await fs.rename(temporary, target);
  } catch (err) {
    await fs.rm(temporary, { force: true });
    throw err;
  }
}

FilesystemStore.prototype.putObject = async function putObject(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fs.mkdir(path.dirname(objectPath), { recursive: true });
  const md5 = crypto.createHash('md5');
  let size = 0;
  await replaceAtomically(objectPath, async (temporary) => {
    if (Buffer.isBuffer(object.content)) {
      md5.update(object.content);
      size = object.content.length;
      await fs.writeFile(temporary, object.content);
      return;
    }
    await new Promise((resolve, reject) => {
      const count = new Transform({
        transform(chunk, encoding, callback) {
          md5.update(chunk, encoding);
          size += chunk.length;
          callback(null, chunk);
        },
      });
      pipeline(object.content, count, createWriteStream(temporary), (err) => (err ? reject(err) : resolve()));
    });
    const expected = object.metadata['content-length'];
    if (expected !== undefined && Number(expected) !== size) {
      throw new Error(`incomplete upload of ${object.key}: ${size} of ${expected} bytes`);
    }
  });
  const digest = md5.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
};

const originalPutMetadata = FilesystemStore.prototype.putMetadata;
FilesystemStore.prototype.putMetadata = async function putMetadata(bucket, key, metadata, md5) {
  // Let s3rver decide what to write, into a scratch store, then move each file into place.
  const scratch = Object.create(this);
  const written = [];
  scratch.getResourcePath = (b, k, resource) => {
    const target = this.getResourcePath(b, k, resource);
    const temporary = temporaryPath(target);
    written.push([temporary, target]);
    return temporary;
  };
  try {
    await originalPutMetadata.call(scratch, bucket, key, metadata, md5);
    for (const [temporary, target] of written) {
      await fs.rename(temporary, target).catch((err) => {
        if (err.code !== 'ENOENT') throw err; // a file s3rver chose not to write
      });
    }
  } finally {
    await Promise.all(written.map(([temporary]) => fs.rm(temporary, { force: true })));
  }
};

FilesystemStore.prototype.getObject = async function getObject(bucket, key, options) {
  // s3rver takes an object's size from one stat and then opens the file by name: when a PUT
  // replaces it in between, the reader gets the new body cut to the old length (Tansu failed
  // parsing its state JSON). Here the size comes from the opened file itself. The etag is read
  // before the body is opened, so a reader may pair a new body with the old etag (its next
  // conditional write is refused and it reads again) but never an old body with the new etag.
  let metadata;
  let handle;
  try {
    metadata = await this.getMetadata(bucket, key);
    handle = await fs.open(this.getResourcePath(bucket, key, 'object'), 'r');
  } catch (err) {
    if (err.code === 'ENOENT') return null;
    throw err;
  }
  const stat = await handle.stat();
  metadata = { ...metadata, 'content-length': stat.size, 'last-modified': stat.mtime.toUTCString() };
  const lastByte = Math.max(0, stat.size - 1);
  const ranged = options && (options.start !== undefined || options.end);
  const range = {
    start: (options && options.start) || 0,
    end: Math.min((options && options.end) || Infinity, lastByte),
  };
  let content = null;
  if (range.start < 0 || range.end < range.start) {
    await handle.close();
  } else {
    content = handle.createReadStream({ start: range.start, end: range.end });
  }
  const object = new S3Object(bucket, key, content, metadata);
  if (ranged) object.range = range;
  return object;
};

const originalGetObjectController = objectController.getObject;
objectController.getObject = async function getObject(ctx) {
  // s3rver answers a conditional GET (304, which Tansu asks for constantly) or a HEAD without
  // closing the body it opened; close every body that is not being sent.
  const store = ctx.store;
  const opened = [];
  ctx.store = Object.create(store);
  ctx.store.getObject = async (...args) => {
    const object = await store.getObject(...args);
    if (object && object.content) opened.push(object.content);
    return object;
  };
  try {
    await originalGetObjectController(ctx);
  } finally {
    ctx.store = store;
    for (const content of opened) if (ctx.body !== content) content.destroy();
  }
};

// One write at a time per object, so a precondition checked is still true when the write lands.
const writesInProgress = new Map();

async function oneWriterAtATime(name, write) {
  const previous = writesInProgress.get(name) || Promise.resolve();
  const current = previous.catch(() => {}).then(write);
  const settled = current.catch(() => {});
  writesInProgress.set(name, settled);
  try {
    return await current;
  } finally {
    if (writesInProgress.get(name) === settled) writesInProgress.delete(name);
  }
}

function bareEtag(value) {
  return value.trim().replace(/^W\//, '').replace(/"/g, '');
}

async function currentEtag(store, bucket, key) {
  try {
    return bareEtag((await store.getMetadata(bucket, key)).etag);
  } catch (err) {
    if (err.code === 'ENOENT') return null;
    throw err;
  }
}

async function checkPreconditions(ctx) {
  const ifNoneMatch = ctx.headers['if-none-match'];
  const ifMatch = ctx.headers['if-match'];
  if (ifNoneMatch === undefined && ifMatch === undefined) return;
  const etag = await currentEtag(ctx.store, ctx.params.bucket, ctx.params.key);
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() === '*' && etag !== null) {
    throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
      Condition: 'If-None-Match',
    });
  }
  if (ifMatch !== undefined) {
    if (etag === null) {
      throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: ctx.params.key });
    }
    const accepted = ifMatch.split(',').map(bareEtag);
    if (!accepted.includes('*') && !accepted.includes(etag)) {
      throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
        Condition: 'If-Match',
      });
    }
  }
}

const originalPutObjectController = objectController.putObject;
objectController.putObject = async function putObject(ctx) {
  const name = `${ctx.params.bucket}/${ctx.params.key}`;
  await oneWriterAtATime(name, async () => {
    try {
      await checkPreconditions(ctx);
    } catch (err) {
      ctx.req.resume(); // discard the body the client is still sending
      throw err;
    }
    await originalPutObjectController(ctx);
  });
};

require('s3rver/bin/s3rver.js');
