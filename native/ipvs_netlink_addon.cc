// SPDX-License-Identifier: GPL-2.0-only
// A netlink dump runner for table reads: sends generic-netlink dump requests one after the other on a
// socket of its own, each as soon as the previous one's answer has ended (NLMSG_DONE or NLMSG_ERROR),
// and returns every byte received, in order, as one Buffer. It runs on a libuv worker thread (the
// caller's event loop keeps running) and knows nothing of IPVS: the caller builds the requests and
// decodes the answers (src/ipvs/netlink/bulk.ts). This is ipvsadm's read pattern without a JavaScript
// callback, promise and buffer per datagram, which cost most of a 10,000-service listing.
#include <napi.h>

#include <errno.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

struct Failure {
  int err = 0;
  std::string what;
};

class DumpWorker : public Napi::AsyncWorker {
 public:
  DumpWorker(Napi::Env env, int protocol, std::vector<uint8_t> requests, int recvBuf, int readBuf, int timeoutMs)
      : Napi::AsyncWorker(env, "ipvs-bpf:netlinkDumps"),
        deferred_(Napi::Promise::Deferred::New(env)),
        protocol_(protocol),
        requests_(std::move(requests)),
        recvBuf_(recvBuf),
        readBuf_(readBuf),
        timeoutMs_(timeoutMs) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol_);
    if (fd < 0) return Fail(errno, "socket");
    RunOn(fd);
    close(fd);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (failure_.err) {
      Napi::Error e = Napi::Error::New(env, failure_.what + ": " + strerror(failure_.err));
      e.Set("errno", Napi::Number::New(env, failure_.err));
      e.Set("answered", Napi::Number::New(env, answered_));
      deferred_.Reject(e.Value());
      return;
    }
    auto *out = new std::vector<uint8_t>(std::move(out_));
    deferred_.Resolve(Napi::Buffer<uint8_t>::New(env, out->data(), out->size(),
                                                 [](Napi::Env, uint8_t *, std::vector<uint8_t> *v) { delete v; }, out));
  }

  void OnError(const Napi::Error &e) override { deferred_.Reject(e.Value()); }

 private:
  void Fail(int err, const char *what) {
    failure_.err = err;
    failure_.what = what;
  }

  void RunOn(int fd) {
    if (recvBuf_ > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &recvBuf_, sizeof(recvBuf_)) < 0)
      return Fail(errno, "setsockopt(SO_RCVBUF)");
    struct timeval tv = {timeoutMs_ / 1000, (timeoutMs_ % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) return Fail(errno, "setsockopt(SO_RCVTIMEO)");
    struct sockaddr_nl local = {};
    local.nl_family = AF_NETLINK;  // nl_pid 0: the kernel picks a free port id
    if (bind(fd, reinterpret_cast<sockaddr *>(&local), sizeof(local)) < 0) return Fail(errno, "bind");
    struct sockaddr_nl kernel = {};
    kernel.nl_family = AF_NETLINK;

    std::vector<uint8_t> buf(readBuf_);
    size_t off = 0;
    while (off + NLMSG_HDRLEN <= requests_.size()) {
      auto *req = reinterpret_cast<const nlmsghdr *>(requests_.data() + off);
      if (req->nlmsg_len < NLMSG_HDRLEN || off + req->nlmsg_len > requests_.size()) return Fail(EINVAL, "request framing");
      const uint32_t seq = req->nlmsg_seq;
      ssize_t sent;
      do sent = sendto(fd, req, req->nlmsg_len, 0, reinterpret_cast<sockaddr *>(&kernel), sizeof(kernel));
      while (sent < 0 && errno == EINTR);
      if (sent < 0) return Fail(errno, "sendmsg");
      off += NLMSG_ALIGN(req->nlmsg_len);
      for (bool done = false; !done;) {
        struct iovec iov = {buf.data(), buf.size()};
        struct msghdr mh = {};
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        ssize_t n;
        do n = recvmsg(fd, &mh, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0) return Fail(errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno, "recvmsg");
        if (mh.msg_flags & MSG_TRUNC) return Fail(EMSGSIZE, "recvmsg (answer larger than the read buffer)");
        // Whole datagrams are kept; the walk only finds where this request's answer ends (and whether the
        // kernel refused it: then nothing more is sent, the caller reports the refusal).
        bool refused = false;
        int left = static_cast<int>(n);
        for (const nlmsghdr *m = reinterpret_cast<const nlmsghdr *>(buf.data()); NLMSG_OK(m, left); m = NLMSG_NEXT(m, left)) {
          if (m->nlmsg_seq != seq || (m->nlmsg_type != NLMSG_DONE && m->nlmsg_type != NLMSG_ERROR)) continue;
          done = true;
          if (m->nlmsg_type == NLMSG_ERROR && m->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) &&
              *reinterpret_cast<const int *>(NLMSG_DATA(m)) != 0)
            refused = true;
        }
        out_.insert(out_.end(), buf.data(), buf.data() + n);
        out_.resize(NLMSG_ALIGN(out_.size()), 0);
        if (refused) {
          answered_++;
          return;
        }
      }
      answered_++;
    }
  }

  Napi::Promise::Deferred deferred_;
  int protocol_;
  std::vector<uint8_t> requests_;
  int recvBuf_;
  int readBuf_;
  int timeoutMs_;
  std::vector<uint8_t> out_;
  Failure failure_;
  uint32_t answered_ = 0;
};

// dumps(protocol, requests: Buffer, { recvBufferSize, readBufferSize, timeoutMs }): Promise<Buffer>
Napi::Value Dumps(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsObject())
    throw Napi::TypeError::New(env, "dumps(protocol, requests, options)");
  auto req = info[1].As<Napi::Buffer<uint8_t>>();
  Napi::Object o = info[2].As<Napi::Object>();
  auto num = [&](const char *k, int def) {
    return o.Has(k) && o.Get(k).IsNumber() ? o.Get(k).As<Napi::Number>().Int32Value() : def;
  };
  int readBuf = num("readBufferSize", 32768);
  if (readBuf < 8192) throw Napi::RangeError::New(env, "readBufferSize must be at least 8192");
  auto *w = new DumpWorker(env, info[0].As<Napi::Number>().Int32Value(),
                           std::vector<uint8_t>(req.Data(), req.Data() + req.Length()), num("recvBufferSize", 1 << 20),
                           readBuf, num("timeoutMs", 60000));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("dumps", Napi::Function::New(env, Dumps, "dumps"));
  return exports;
}

}  // namespace

NODE_API_MODULE(ipvs_netlink, Init)
