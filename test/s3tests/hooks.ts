/**
 * The suite's two accounts ("s3 main" and "s3 alt") as two MinIO users behind osp: each frontend
 * key signs upstream as its own user, so ACL, policy and ownership tests meet a second account.
 */
import type { BackendCredentials } from "../../src/hooks.ts";

const accounts = JSON.parse(process.env.S3TESTS_ACCOUNTS ?? "{}") as Record<string, BackendCredentials>;

export function fetchCredentials(token: string): BackendCredentials {
  const account = accounts[token];
  if (!account) throw new Error(`no backend account for ${token}`);
  return account;
}
