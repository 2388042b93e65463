/* zflood -- many large Salt requests at once, as a crowd of minions would
 * send them, without waiting for replies:
 *   zflood ENDPOINT COUNT SIZE
 * One DEALER socket sends COUNT version-3 aes requests ([empty, payload], the
 * REQ envelope) whose opaque load is SIZE bytes, to ENDPOINT (a saltrelay-down
 * ret_bind), then waits until ZeroMQ has handed them all over (linger). For
 * memory tests: the relay must stay within its bounds whatever arrives. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* msgpack {"enc": "aes", "load": <bin SIZE>, "id": "floodNNNN", "version": 3} */
static size_t build(unsigned char *buf, size_t size, unsigned k)
{
    size_t n = 0;
    static const unsigned char head[] = {0x84, 0xa3, 'e', 'n', 'c', 0xa3, 'a', 'e', 's', 0xa4, 'l', 'o', 'a', 'd', 0xc6};
    memcpy(buf, head, sizeof head);
    n += sizeof head;
    for (int s = 24; s >= 0; s -= 8)
        buf[n++] = (unsigned char)(size >> s);
    memset(buf + n, 'L', size);
    n += size;
    char id[16];
    int idlen = snprintf(id, sizeof id, "flood%u", k);
    buf[n++] = 0xa2, buf[n++] = 'i', buf[n++] = 'd';
    buf[n++] = (unsigned char)(0xa0 | idlen);
    memcpy(buf + n, id, (size_t)idlen);
    n += (size_t)idlen;
    static const unsigned char tail[] = {0xa7, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x03};
    memcpy(buf + n, tail, sizeof tail);
    return n + sizeof tail;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: zflood ENDPOINT COUNT SIZE\n");
        return 2;
    }
    unsigned count = (unsigned)strtoul(argv[2], NULL, 10);
    size_t size = strtoul(argv[3], NULL, 10);
    unsigned char *buf = malloc(size + 64);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 120000, hwm = 100;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (!buf || zmq_connect(s, argv[1]) != 0) {
        fprintf(stderr, "zflood: cannot connect to %s\n", argv[1]);
        return 1;
    }
    for (unsigned k = 0; k < count; k++) {
        size_t len = build(buf, size, k);
        zmq_send(s, "", 0, ZMQ_SNDMORE);
        if (zmq_send(s, buf, len, 0) < 0) {
            fprintf(stderr, "zflood: send failed: %s\n", zmq_strerror(zmq_errno()));
            return 1;
        }
    }
    fprintf(stderr, "zflood: %u requests of %zu bytes sent\n", count, size);
    zmq_close(s);
    zmq_ctx_term(ctx);
    free(buf);
    return 0;
}
