/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C API that bindgen turns into src/dm/bindings_generated.rs at build time: the
 * device-mapper interface, our helpers, and constants bindgen cannot evaluate as macros.
 * Types the kernel crate already binds (bio, block_device, ...) are not generated again:
 * src/dm/bindings.rs glob-imports kernel::bindings.
 */
#include <linux/device-mapper.h>
#include <linux/bio.h>
#include <linux/delay.h>
#include "helpers.h"
#include "kobj.h"

const blk_opf_t DMR_REQ_OP_MASK = REQ_OP_MASK;
const blk_opf_t DMR_REQ_PREFLUSH = REQ_PREFLUSH;
const blk_opf_t DMR_REQ_FUA = REQ_FUA;
const blk_opf_t DMR_REQ_SYNC = REQ_SYNC;
const gfp_t DMR_GFP_NOIO = GFP_NOIO;
const unsigned int DMR_REQ_OP_READ = REQ_OP_READ;
const unsigned int DMR_REQ_OP_WRITE = REQ_OP_WRITE;
const blk_status_t DMR_BLK_STS_OK = BLK_STS_OK;
const blk_status_t DMR_BLK_STS_IOERR = BLK_STS_IOERR;
const blk_status_t DMR_BLK_STS_RESOURCE = BLK_STS_RESOURCE;
