/*
 * An application written in C against Debian's NATS C library (libnats), as a synod user
 * outside JavaScript writes: JSON bodies on the public subject synod.<group>.write, one
 * (clientId, seq) per write, and the same write sent again after "no responders" (nobody
 * serves the subject for a moment after a leader dies), a timeout, or an answer that says
 * the leader moved. Prints "<seq> <answer>" for each write, and its retry count on stderr.
 *
 * usage: nats_writer URL GROUP CLIENT_ID COUNT [PAUSE_MS]
 * PAUSE_MS: a pause after each acknowledged write (default 0), so a test can act mid-run.
 */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ATTEMPTS 400
#define RETRY_PAUSE_US (50 * 1000)

static int worth_retrying(const char *answer) {
  return strstr(answer, "\"code\":\"NOT_LEADER\"") != NULL ||
         strstr(answer, "\"code\":\"NO_QUORUM\"") != NULL ||
         strstr(answer, "\"code\":\"BUSY\"") != NULL;
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: nats_writer URL GROUP CLIENT_ID COUNT [PAUSE_MS]\n");
    return 2;
  }
  const char *url = argv[1], *group = argv[2], *client = argv[3];
  int count = atoi(argv[4]);
  int pause_ms = argc == 6 ? atoi(argv[5]) : 0;
  natsConnection *nc = NULL;
  natsStatus s = natsConnection_ConnectTo(&nc, url);
  if (s != NATS_OK) {
    fprintf(stderr, "connect: %s\n", natsStatus_GetText(s));
    return 1;
  }
  char subject[256];
  snprintf(subject, sizeof subject, "synod.%s.write", group);
  int retries = 0, no_responders = 0;
  for (int seq = 1; seq <= count; seq++) {
    char body[512];
    snprintf(body, sizeof body,
             "{\"clientId\":\"%s\",\"seq\":%d,\"command\":{\"op\":\"put\",\"key\":\"c%d\","
             "\"value\":\"v%d\"}}",
             client, seq, seq, seq);
    for (int attempt = 0;; attempt++) {
      natsMsg *reply = NULL;
      s = natsConnection_RequestString(&reply, nc, subject, body, 5000);
      if (s == NATS_OK) {
        const char *data = natsMsg_GetData(reply);
        int length = natsMsg_GetDataLength(reply);
        if (!worth_retrying(data)) {
          printf("%d %.*s\n", seq, length, data);
          fflush(stdout);
          natsMsg_Destroy(reply);
          if (pause_ms > 0) usleep(pause_ms * 1000);
          break;
        }
        natsMsg_Destroy(reply);
      } else if (s != NATS_NO_RESPONDERS && s != NATS_TIMEOUT) {
        fprintf(stderr, "request: %s\n", natsStatus_GetText(s));
        return 1;
      }
      if (attempt + 1 >= MAX_ATTEMPTS) {
        fprintf(stderr, "gave up on seq %d: %s\n", seq, natsStatus_GetText(s));
        return 1;
      }
      retries++;
      if (s == NATS_NO_RESPONDERS) no_responders++;
      usleep(RETRY_PAUSE_US);
    }
  }
  fprintf(stderr, "retries %d (no responders %d)\n", retries, no_responders);
  natsConnection_Destroy(nc);
  nats_Close();
  return 0;
}
