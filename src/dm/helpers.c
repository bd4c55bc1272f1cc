// SPDX-License-Identifier: GPL-2.0
/* See helpers.h. */
#include "helpers.h"

void dmr_bio_set_dev(struct bio *bio, struct block_device *bdev)
{
	bio_set_dev(bio, bdev);
}

sector_t dmr_bdev_nr_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

unsigned int dmr_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

void dmr_init_work(struct work_struct *work, work_func_t func)
{
	INIT_WORK(work, func);
}

bool dmr_queue_work(struct workqueue_struct *wq, struct work_struct *work)
{
	return queue_work(wq, work);
}

/* A workqueue that may run in the I/O path under memory pressure (a rescuer thread). */
struct workqueue_struct *dmr_alloc_reclaim_workqueue(const char *name)
{
	return alloc_workqueue("%s", WQ_MEM_RECLAIM, 0, name);
}

void dmr_rcu_read_lock(void)
{
	rcu_read_lock();
}

void dmr_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

void dmr_ratelimit_init(struct ratelimit_state *rs)
{
	ratelimit_state_init(rs, DEFAULT_RATELIMIT_INTERVAL, DEFAULT_RATELIMIT_BURST);
}

unsigned int dmr_memalloc_noio_save(void)
{
	return memalloc_noio_save();
}

void dmr_memalloc_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}
