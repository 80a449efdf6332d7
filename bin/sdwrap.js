#!/usr/bin/env node
// Entry point: the CLI is built from src/ into dist/ (npm run build).
import '../dist/cli.js';
