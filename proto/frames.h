/* frames.h -- whole ZeroMQ messages as arrays of zmq_msg_t, for the return
 * path's sockets and reader pipes (no copies of frame data). */
#ifndef SALTRELAY_FRAMES_H
#define SALTRELAY_FRAMES_H

#include <stddef.h>
#include <zmq.h>

/* Receive one whole message into M (room for MAX frames); the first frame
 * without waiting. Returns the number of frames, 0 if none was waiting, or
 * MAX + 1 if the message had more (the extra frames are dropped; M holds
 * MAX frames the caller must still close). */
size_t frames_recv(void *sock, zmq_msg_t *m, size_t max);
/* Close the first N frames of M (N may be MAX + 1 as returned above). */
void frames_close(zmq_msg_t *m, size_t n, size_t max);
/* Pointers and lengths of frames FIRST.. of M, for the record decoders. */
void frames_view(zmq_msg_t *m, size_t first, size_t n, const char **fv, size_t *fl);
/* For a frame that will be held a while: ZeroMQ hands a received frame that
 * fits its 8 KiB receive buffer as a reference into that buffer, so holding
 * a 200-byte frame would pin 8 KiB. Such a frame is copied into a buffer of
 * its own size (frames up to 33 bytes live inside the zmq_msg_t, larger ones
 * than the buffer are allocated alone: both are left). On failure M stays. */
void frames_own(zmq_msg_t *m);

#endif
