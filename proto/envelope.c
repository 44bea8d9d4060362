#include "envelope.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct envelope_reader {
    msgpack_unpacker unpacker;
    msgpack_unpacked result;
    size_t           max_message_bytes;
};

int envelope_pack_event(msgpack_sbuffer *out, uint64_t seq, uint32_t flags, const char *tag,
                        size_t tag_len, const void *payload, size_t payload_len)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, 5);
    rc |= msgpack_pack_uint8(&pk, ENVELOPE_EVENT);
    rc |= msgpack_pack_uint64(&pk, seq);
    rc |= msgpack_pack_uint32(&pk, flags);
    rc |= msgpack_pack_str_with_body(&pk, tag, tag_len);
    rc |= msgpack_pack_bin_with_body(&pk, payload, payload_len);
    return rc ? -1 : 0;
}

int envelope_pack_ack(msgpack_sbuffer *out, uint64_t seq, uint64_t committed, uint64_t rejected)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, 4);
    rc |= msgpack_pack_uint8(&pk, ENVELOPE_ACK);
    rc |= msgpack_pack_uint64(&pk, seq);
    rc |= msgpack_pack_uint64(&pk, committed);
    rc |= msgpack_pack_uint64(&pk, rejected);
    return rc ? -1 : 0;
}

int envelope_pack_stop(msgpack_sbuffer *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, 1);
    rc |= msgpack_pack_uint8(&pk, ENVELOPE_STOP);
    return rc ? -1 : 0;
}

int envelope_pack_emit(msgpack_sbuffer *out, const char *tag, size_t tag_len, const void *data,
                       size_t data_len)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, 3);
    rc |= msgpack_pack_uint8(&pk, ENVELOPE_EMIT);
    rc |= msgpack_pack_str_with_body(&pk, tag, tag_len);
    rc |= msgpack_pack_bin_with_body(&pk, data, data_len);
    return rc ? -1 : 0;
}

envelope_reader_t *envelope_reader_new(size_t max_message_bytes)
{
    envelope_reader_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (!msgpack_unpacker_init(&self->unpacker, 64 * 1024)) {
        free(self);
        return NULL;
    }
    msgpack_unpacked_init(&self->result);
    self->max_message_bytes = max_message_bytes;
    return self;
}

void envelope_reader_destroy(envelope_reader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    envelope_reader_t *self = *self_p;
    msgpack_unpacked_destroy(&self->result);
    msgpack_unpacker_destroy(&self->unpacker);
    free(self);
    *self_p = NULL;
}

ssize_t envelope_reader_fill(envelope_reader_t *self, int fd)
{
    if (msgpack_unpacker_buffer_capacity(&self->unpacker) < 64 * 1024 &&
        !msgpack_unpacker_reserve_buffer(&self->unpacker, 64 * 1024)) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t n;
    do
        n = read(fd, msgpack_unpacker_buffer(&self->unpacker),
                 msgpack_unpacker_buffer_capacity(&self->unpacker));
    while (n < 0 && errno == EINTR);
    if (n > 0)
        msgpack_unpacker_buffer_consumed(&self->unpacker, (size_t) n);
    return n;
}

static bool get_uint(const msgpack_object *o, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *out = o->via.u64;
    return true;
}

static int decode_event(const msgpack_object_array *a, envelope_msg_t *msg)
{
    uint64_t flags;
    if (a->size != 5 || !get_uint(&a->ptr[1], &msg->seq) || !get_uint(&a->ptr[2], &flags) ||
        a->ptr[3].type != MSGPACK_OBJECT_STR || a->ptr[4].type != MSGPACK_OBJECT_BIN)
        return -1;
    msg->flags = (uint32_t) flags;
    msg->tag = a->ptr[3].via.str.ptr;
    msg->tag_len = a->ptr[3].via.str.size;
    msg->payload = a->ptr[4].via.bin.ptr;
    msg->payload_len = a->ptr[4].via.bin.size;
    return 0;
}

static int decode_emit(const msgpack_object_array *a, envelope_msg_t *msg)
{
    if (a->size != 3 || a->ptr[1].type != MSGPACK_OBJECT_STR ||
        a->ptr[2].type != MSGPACK_OBJECT_BIN)
        return -1;
    msg->tag = a->ptr[1].via.str.ptr;
    msg->tag_len = a->ptr[1].via.str.size;
    msg->payload = a->ptr[2].via.bin.ptr;
    msg->payload_len = a->ptr[2].via.bin.size;
    return 0;
}

static int decode_ack(const msgpack_object_array *a, envelope_msg_t *msg)
{
    if (a->size != 4 || !get_uint(&a->ptr[1], &msg->seq) ||
        !get_uint(&a->ptr[2], &msg->committed) || !get_uint(&a->ptr[3], &msg->rejected))
        return -1;
    return 0;
}

int envelope_reader_next(envelope_reader_t *self, envelope_msg_t *msg, char *err, size_t errlen)
{
    msgpack_unpack_return ret = msgpack_unpacker_next(&self->unpacker, &self->result);
    if (ret == MSGPACK_UNPACK_CONTINUE) {
        if (msgpack_unpacker_message_size(&self->unpacker) > self->max_message_bytes) {
            snprintf(err, errlen, "envelope larger than %zu bytes", self->max_message_bytes);
            return -1;
        }
        return 0;
    }
    if (ret != MSGPACK_UNPACK_SUCCESS) {
        snprintf(err, errlen, "envelope is not msgpack (unpack error %d)", (int) ret);
        return -1;
    }
    const msgpack_object *o = &self->result.data;
    uint64_t type;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1 ||
        !get_uint(&o->via.array.ptr[0], &type)) {
        snprintf(err, errlen, "envelope is not a typed array");
        return -1;
    }
    *msg = (envelope_msg_t){ .type = (envelope_type_t) type };
    int rc = -1;
    if (type == ENVELOPE_EVENT)
        rc = decode_event(&o->via.array, msg);
    else if (type == ENVELOPE_ACK)
        rc = decode_ack(&o->via.array, msg);
    else if (type == ENVELOPE_STOP)
        rc = o->via.array.size == 1 ? 0 : -1;
    else if (type == ENVELOPE_EMIT)
        rc = decode_emit(&o->via.array, msg);
    if (rc < 0) {
        snprintf(err, errlen, "malformed envelope of type %llu", (unsigned long long) type);
        return -1;
    }
    return 1;
}
