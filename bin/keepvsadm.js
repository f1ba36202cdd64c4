#!/usr/bin/env node
import '../dist/src/cli/keepvsadm-main.js';
