#!/usr/bin/env node
// Linked or globally installed entry: load the TypeScript CLI through tsx's loader (no build
// step) in this same process, so that Ctrl-C or a SIGTERM sent to this pid reaches the
// simulator itself and it stops cleanly (exit 130 or 143), with no wrapper to forward it.
import { register } from 'tsx/esm/api';

register();
const { runAsMain } = await import('../src/main.ts');
runAsMain(process.argv);
