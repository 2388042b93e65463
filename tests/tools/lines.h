/* lines.h -- the test tools' text form of ZeroMQ messages: one message per
 * line, each frame as lowercase hex, frames separated by one space. The
 * Python harness writes and compares these; the tools never interpret them. */
#ifndef SALTRELAY_TEST_LINES_H
#define SALTRELAY_TEST_LINES_H

#include <stdio.h>
#include <zmq.h>

/* Print the frames of one message as a line. */
void lines_write(FILE *out, zmq_msg_t *frames, size_t n);
/* Send one line as a multipart message; returns -1 on a malformed line. */
int lines_send(void *sock, const char *line, int flags_last);

#endif
