#!/usr/bin/env node
// Entry point of the juicefs-csi command. The sources are TypeScript run by Node 24's type stripping.
import { main } from "../cli/main.ts";

process.exitCode = await main(process.argv.slice(2));
