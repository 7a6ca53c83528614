#!/usr/bin/env node
// kubectl plugin entry point: kubectl runs `kubectl-jfs` from PATH for `kubectl jfs ...`, with the
// arguments after `jfs`. The same command as juicefs-csi (`kubectl jfs doctor pod/NAME -n NS`).
import { main } from "../cli/main.ts";

process.exitCode = await main(process.argv.slice(2), undefined, { name: "kubectl jfs" });
