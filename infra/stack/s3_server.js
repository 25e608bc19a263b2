#!/usr/bin/env node
// The embedded stack's local S3: s3rver, with PUTs made atomic as they are on S3 and MinIO.
//
// s3rver's filesystem store truncates an object's file and then streams the new body into it.
// A reader in between sees an empty object, and a PUT cut short (its client killed, e.g. the
// broker under `kill -9`) leaves a truncated object for good: Tansu then fails to parse that
// partition's watermark.json on every fetch. Here every file of an object (body, md5, metadata)
// is written to a temporary file in the same directory and renamed over the old one, so readers
// see the old or the new object, never part of one. Takes s3rver's own command-line options.
'use strict';

const crypto = require('crypto');
const { createWriteStream } = require('fs');
const fs = require('fs/promises');
const path = require('path');
const { Transform, pipeline } = require('stream');
const FilesystemStore = require('s3rver/lib/stores/filesystem');

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

require('s3rver/bin/s3rver.js');
