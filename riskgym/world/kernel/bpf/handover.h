// How the loaders (observe.c, steer.c) hand riskgym's process what they made: up to 8 descriptors over a unix
// socket (SCM_RIGHTS), with a one-byte message. Returns 1 when they were sent.
#include <string.h>
#include <sys/socket.h>

static int hand_over(int sock, char tag, const int *fds, int n)
{
	char control[CMSG_SPACE(sizeof(int) * 8)] = {0};
	struct iovec iov = {.iov_base = &tag, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	return sendmsg(sock, &msg, 0) == 1;
}
