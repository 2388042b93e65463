/* xread.h -- shared by the fuzz targets of stream record decoders: bytes go
 * to hiredis's reply reader, and each reply is walked as XREAD and
 * XREADGROUP return it ([[key, [entry...]]...]). The decoder gets every
 * entry, and also the reply itself and each [key, entries] pair, so that
 * replies of any shape reach it. */
#ifndef SALTRELAY_FUZZ_XREAD_H
#define SALTRELAY_FUZZ_XREAD_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

typedef void (*xread_fn)(const redisReply *entry);

void fuzz_xread(const uint8_t *data, size_t size, xread_fn decode);

#endif
