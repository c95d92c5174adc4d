import { setDefaultTimeout } from "bun:test";

// integration tests start servers and move up to 100 MiB
setDefaultTimeout(120_000);
