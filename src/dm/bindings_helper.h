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
const blk_opf_t DMR_REQ_POLLED = REQ_POLLED;
const gfp_t DMR_GFP_NOIO = GFP_NOIO;
const unsigned int DMR_REQ_OP_READ = REQ_OP_READ;
const unsigned int DMR_REQ_OP_WRITE = REQ_OP_WRITE;
const unsigned int DMR_REQ_OP_WRITE_ZEROES = REQ_OP_WRITE_ZEROES;
const blk_status_t DMR_BLK_STS_OK = BLK_STS_OK;
const blk_status_t DMR_BLK_STS_IOERR = BLK_STS_IOERR;
const blk_status_t DMR_BLK_STS_RESOURCE = BLK_STS_RESOURCE;
/* The statuses src/core/src/io_error.rs classifies (checked at build time in bio.rs). */
const blk_status_t DMR_BLK_STS_NOTSUPP = BLK_STS_NOTSUPP;
const blk_status_t DMR_BLK_STS_TIMEOUT = BLK_STS_TIMEOUT;
const blk_status_t DMR_BLK_STS_NOSPC = BLK_STS_NOSPC;
const blk_status_t DMR_BLK_STS_TRANSPORT = BLK_STS_TRANSPORT;
const blk_status_t DMR_BLK_STS_TARGET = BLK_STS_TARGET;
const blk_status_t DMR_BLK_STS_RESV_CONFLICT = BLK_STS_RESV_CONFLICT;
const blk_status_t DMR_BLK_STS_MEDIUM = BLK_STS_MEDIUM;
const blk_status_t DMR_BLK_STS_PROTECTION = BLK_STS_PROTECTION;
const blk_status_t DMR_BLK_STS_DM_REQUEUE = BLK_STS_DM_REQUEUE;
const blk_status_t DMR_BLK_STS_AGAIN = BLK_STS_AGAIN;
const blk_status_t DMR_BLK_STS_DEV_RESOURCE = BLK_STS_DEV_RESOURCE;
const blk_status_t DMR_BLK_STS_ZONE_OPEN_RESOURCE = BLK_STS_ZONE_OPEN_RESOURCE;
const blk_status_t DMR_BLK_STS_ZONE_ACTIVE_RESOURCE = BLK_STS_ZONE_ACTIVE_RESOURCE;
const blk_status_t DMR_BLK_STS_OFFLINE = BLK_STS_OFFLINE;
const blk_status_t DMR_BLK_STS_DURATION_LIMIT = BLK_STS_DURATION_LIMIT;
const blk_status_t DMR_BLK_STS_INVAL = BLK_STS_INVAL;
