import { S3Error } from "../../src/errors.ts";

/** "ok", or the S3 error code the promise was rejected with. */
export async function s3Code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e) {
    if (e instanceof S3Error) return e.code;
    throw e;
  }
}
