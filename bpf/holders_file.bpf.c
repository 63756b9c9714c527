// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * Socket holders, portable tier: an iter/task_file program (kernel >= 5.8).
 * The kernel walks every fd table (taking a reference on each file, which
 * makes it ~3x slower than the task walk) and calls this once per open
 * file; threads sharing their leader's table are skipped by the kernel.
 */
#include "vmlinux.h"
#include "holders.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("iter/task_file")
int holders_file(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	if (!task || !file)
		return 0;
	struct inode *ip = file->f_inode;
	if (!ip || (ip->i_mode & S_IFMT) != S_IFSOCK)
		return 0;
	struct holder_rec rec = {
		.tgid = task->tgid,
		.fd = ctx->fd,
		.ino = ip->i_ino,
		.tid = task->pid,
		.sock = sock_bits(file, core_type_id_kernel(struct socket),
				  core_type_id_kernel(struct inet_connection_sock)),
	};
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}
