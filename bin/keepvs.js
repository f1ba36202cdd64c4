#!/usr/bin/env node
import '../dist/src/cli/keepvs-main.js';
