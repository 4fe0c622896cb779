/* A threaded program for the seccomp tests: eight threads (glibc tries clone3 first and falls
 * back to clone when it answers ENOSYS), a mutex, a condition variable, and joins. Prints
 * "threads: 8 joined, sum 36". */
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_started = PTHREAD_COND_INITIALIZER;
static int started = 0;
static long sum = 0;

static void* work(void* arg) {
  long id = (long)arg;
  pthread_mutex_lock(&lock);
  ++started;
  sum += id;
  pthread_cond_broadcast(&all_started);
  while (started < 8) pthread_cond_wait(&all_started, &lock);
  pthread_mutex_unlock(&lock);
  return NULL;
}

int main(void) {
  pthread_t t[8];
  for (long i = 0; i < 8; ++i)
    if (pthread_create(&t[i], NULL, work, (void*)(i + 1)) != 0) {
      perror("pthread_create");
      return 1;
    }
  int joined = 0;
  for (int i = 0; i < 8; ++i) joined += pthread_join(t[i], NULL) == 0;
  printf("threads: %d joined, sum %ld\n", joined, sum);
  return joined == 8 ? 0 : 1;
}
