#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Regenerates the seed corpus under src/core/fuzz/corpus/<target>/seed-* from
# bodies.rs::seed_corpus() (valid encodings of small copies, superblocks and blocks). The core's
# test `fuzz_seed_corpus_is_current` fails while the files on disk differ from what it generates.
set -euo pipefail
cd "$(dirname "$0")/../../.."
UPDATE_FUZZ_CORPUS=1 cargo test -p dm-remap-core --lib -- --exact metadata::tests::fuzz_seed_corpus_is_current
