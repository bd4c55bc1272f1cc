/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Out-of-line wrappers for the static inline kernel functions the Rust side needs
 * (bindgen cannot see static inlines). Each one only forwards its arguments.
 */
#ifndef DM_REMAP_HELPERS_H
#define DM_REMAP_HELPERS_H

#include <linux/bio.h>
#include <linux/device-mapper.h>
#include <linux/blkdev.h>
#include <linux/ratelimit.h>
#include <linux/rcupdate.h>
#include <linux/sched/mm.h>
#include <linux/timekeeping.h>
#include <linux/workqueue.h>
#include "compat.h"

void dmr_bio_set_dev(struct bio *bio, struct block_device *bdev);
sector_t dmr_bdev_nr_sectors(struct block_device *bdev);
unsigned int dmr_bdev_logical_block_size(struct block_device *bdev);
bool dmr_bdev_read_only(struct block_device *bdev);
bool dmr_table_writable(struct dm_target *ti);
int dmr_bdev_unique_id(struct block_device *bdev, u8 id[16]);
void dmr_init_work(struct work_struct *work, work_func_t func);
bool dmr_queue_work(struct workqueue_struct *wq, struct work_struct *work);
struct workqueue_struct *dmr_alloc_reclaim_workqueue(const char *name);
void dmr_rcu_read_lock(void);
void dmr_rcu_read_unlock(void);
void dmr_ratelimit_init(struct ratelimit_state *rs);
unsigned int dmr_memalloc_noio_save(void);
void dmr_memalloc_noio_restore(unsigned int flags);
void dmr_init_delayed_work(struct delayed_work *dwork, work_func_t func);
bool dmr_background_queue(struct delayed_work *dwork, unsigned int ms);
bool dmr_background_reschedule(struct delayed_work *dwork, unsigned int ms);
u64 dmr_now_ms(void);
const char *dmr_dm_disk_name(struct dm_target *ti);
int dmr_claim_device(struct dm_target *ti, dev_t dev, void **claim, void **shared);
void dmr_claim_set_shared(void *claim, void *shared);
void *dmr_release_device(void *claim);

#endif
