// SPDX-License-Identifier: GPL-2.0
/* See helpers.h. */
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/slab.h>
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

bool dmr_bdev_read_only(struct block_device *bdev)
{
	return bdev_read_only(bdev);
}

bool dmr_table_writable(struct dm_target *ti)
{
	return dm_table_get_mode(ti->table) & BLK_OPEN_WRITE;
}

/*
 * The first unique identifier the disk reports (NAA, EUI-64, T10 designators, as SCSI and
 * NVMe give them through get_unique_id) in id, zero-padded; returns its kind
 * (enum blk_unique_id), or 0 with id zeroed if the disk has none (virtio, loop, most dm).
 */
int dmr_bdev_unique_id(struct block_device *bdev, u8 id[16])
{
	static const enum blk_unique_id kinds[] = { BLK_UID_NAA, BLK_UID_EUI64, BLK_UID_T10 };
	const struct block_device_operations *fops = bdev->bd_disk->fops;
	int i;

	memset(id, 0, 16);
	if (!fops->get_unique_id)
		return 0;
	for (i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (fops->get_unique_id(bdev->bd_disk, id, kinds[i]) > 0)
			return kinds[i];
		memset(id, 0, 16);
	}
	return 0;
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
	return alloc_workqueue("%s", WQ_MEM_RECLAIM | DMR_WQ_PERCPU, 0, name);
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

void dmr_init_delayed_work(struct delayed_work *dwork, work_func_t func)
{
	INIT_DELAYED_WORK(dwork, func);
}

/* Background work runs on system_long_wq: it may take a while and is not needed for reclaim. */
bool dmr_background_queue(struct delayed_work *dwork, unsigned int ms)
{
	return queue_delayed_work(system_long_wq, dwork, msecs_to_jiffies(ms));
}

/* As dmr_background_queue, but a pending run is moved to ms from now. */
bool dmr_background_reschedule(struct delayed_work *dwork, unsigned int ms)
{
	return mod_delayed_work(system_long_wq, dwork, msecs_to_jiffies(ms));
}

/* Monotonic milliseconds since boot. */
u64 dmr_now_ms(void)
{
	return ktime_to_ms(ktime_get());
}

/* The dm device's kernel name (dm-3), which names its block device and sysfs folder. */
const char *dmr_dm_disk_name(struct dm_target *ti)
{
	return dm_disk(dm_table_get_md(ti->table))->disk_name;
}

/*
 * Which dm-remap-v4 targets use which device as their spare: two targets on one spare would
 * commit two remap tables to the same metadata and hand out the same spare units. dm itself
 * lets several dm devices open one device, so the module keeps this list.
 *
 * The targets of one dm device that claim the same spare (the live table and a table loaded to
 * replace it; dm destroys the old one after the new one is resumed) form a group that shares
 * one in-core state of the spare, as dm-thin's tables share their pool and dm-cache's their
 * metadata: an opaque pointer the Rust side owns, handed back to it when the last claim of the
 * group is released.
 */
struct dmr_claim_group {
	unsigned int refs;
	void *shared;
};

struct dmr_claim {
	struct list_head node;
	dev_t dev;
	const struct mapped_device *md;
	const struct dm_table *table;
	struct dmr_claim_group *group;
};
static LIST_HEAD(dmr_claims);
static DEFINE_MUTEX(dmr_claims_lock);

/*
 * Records that target ti uses dev; stores a handle for the calls below in *claim, and in
 * *shared the group's shared state: that of the same device's other table, or NULL for the
 * first claim (the caller then sets it with dmr_claim_set_shared). Fails with -EBUSY if a
 * target of another dm device, or another target of the same table, uses dev; -ENOMEM.
 * dm serialises table loads of one device, so no other claim of the group sees a NULL state.
 */
int dmr_claim_device(struct dm_target *ti, dev_t dev, void **claim, void **shared)
{
	struct mapped_device *md = dm_table_get_md(ti->table);
	struct dmr_claim *c, *mine;
	struct dmr_claim_group *group = NULL;
	int r = 0;

	mine = kmalloc(sizeof(*mine), GFP_KERNEL);
	if (!mine)
		return -ENOMEM;
	mutex_lock(&dmr_claims_lock);
	list_for_each_entry(c, &dmr_claims, node) {
		if (c->dev != dev)
			continue;
		if (c->md != md || c->table == ti->table || !c->group->shared) {
			r = -EBUSY;
			break;
		}
		group = c->group;
	}
	if (!r && !group) {
		group = kzalloc(sizeof(*group), GFP_KERNEL);
		if (!group)
			r = -ENOMEM;
	}
	if (!r) {
		group->refs++;
		mine->dev = dev;
		mine->md = md;
		mine->table = ti->table;
		mine->group = group;
		list_add(&mine->node, &dmr_claims);
		*claim = mine;
		*shared = group->shared;
	}
	mutex_unlock(&dmr_claims_lock);
	if (r)
		kfree(mine);
	return r;
}

/* Sets the shared state of the group of a first claim (its *shared was NULL). */
void dmr_claim_set_shared(void *claim, void *shared)
{
	struct dmr_claim *c = claim;

	mutex_lock(&dmr_claims_lock);
	c->group->shared = shared;
	mutex_unlock(&dmr_claims_lock);
}

/*
 * Releases a claim. Returns the group's shared state if this was its last claim (the caller
 * frees it), else NULL.
 */
void *dmr_release_device(void *claim)
{
	struct dmr_claim *c = claim;
	struct dmr_claim_group *group = c->group;
	void *last = NULL;

	mutex_lock(&dmr_claims_lock);
	list_del(&c->node);
	if (--group->refs == 0) {
		last = group->shared;
		kfree(group);
	}
	mutex_unlock(&dmr_claims_lock);
	kfree(c);
	return last;
}
