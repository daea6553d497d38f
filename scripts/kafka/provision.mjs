#!/usr/bin/env node
// Resolves the jars of a real Apache Kafka broker from Maven Central, so tests and developers can
// run one without Docker: only `java` (17+) and `mvn` are needed.
//
// A tiny pom.xml that depends on kafka_2.13 (the broker, which pulls everything it needs at
// runtime) plus an slf4j binding goes into the cache, and `mvn dependency:copy-dependencies`
// copies the resolved jars into <cache>/<version>/libs. Maven uses its own local repository
// inside a staging dir (deleted afterwards): deleting the cache dir is then a complete reset,
// and the developer's ~/.m2 is neither read nor filled. Their settings.xml (mirrors, proxies)
// still applies.
//
// The marker file <cache>/<version>/complete is written only after every jar has been copied
// and the staging dir renamed into place, so an interrupted download is simply redone.
//
//   node scripts/kafka/provision.mjs   → prints the classpath
//   TICKETING_KAFKA_CACHE=/some/dir    → cache location (default ~/.cache/ticketing-kafka)
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const exec_file = promisify(execFile);

// 3.9.x is the last line that still speaks every protocol version kafkajs 2.2.4 uses (4.0
// removed many old request versions, KIP-896) and it runs in KRaft mode (no ZooKeeper).
export const kafka_version = '3.9.1';
const scala_version = '2.13';
// Must match the slf4j-api that kafka 3.9.1 depends on (1.7.36). reload4j is what the official
// Kafka distribution ships, and kafka.utils.Log4jController needs log4j 1.x classes.
const slf4j_version = '1.7.36';
const dependency_plugin_version = '3.8.1';

export function cache_dir() {
  return join(process.env.TICKETING_KAFKA_CACHE || join(homedir(), '.cache', 'ticketing-kafka'), kafka_version);
}

function pom() {
  const dependency = (group, artifact, version) =>
    `    <dependency><groupId>${group}</groupId><artifactId>${artifact}</artifactId><version>${version}</version></dependency>`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ticketing</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>${kafka_version}</version>
  <packaging>pom</packaging>
  <dependencies>
${dependency('org.apache.kafka', `kafka_${scala_version}`, kafka_version)}
${dependency('org.slf4j', 'slf4j-reload4j', slf4j_version)}
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>${dependency_plugin_version}</version>
      </plugin>
    </plugins>
  </build>
</project>
`;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** Staging dirs of downloads whose process is gone (killed mid-download); live ones are kept. */
function remove_abandoned_staging(dir) {
  for (const name of readdirSync(dir)) {
    const match = /^staging-(\d+)$/.exec(name);
    if (match && !alive(Number(match[1]))) rmSync(join(dir, name), { recursive: true, force: true });
  }
}

/** Downloads the broker's jars unless a complete copy is cached; resolves with a java classpath. */
export async function provision() {
  const dir = cache_dir();
  const libs = join(dir, 'libs');
  const marker = join(dir, 'complete');
  // `libs/*` is java's own wildcard (expanded by the JVM, not the shell), as kafka-run-class does.
  const result = { classpath: join(libs, '*'), libs, downloaded: false };
  if (existsSync(marker) && existsSync(libs)) return result;

  mkdirSync(dir, { recursive: true });
  remove_abandoned_staging(dir);
  const staging = join(dir, `staging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging);
  try {
    writeFileSync(join(staging, 'pom.xml'), pom());
    const args = [
      '-q', '-B', '-f', join(staging, 'pom.xml'),
      `-Dmaven.repo.local=${join(staging, 'm2')}`,
      `org.apache.maven.plugins:maven-dependency-plugin:${dependency_plugin_version}:copy-dependencies`,
      `-DoutputDirectory=${join(staging, 'libs')}`,
      '-DincludeScope=runtime',
    ];
    try {
      await exec_file('mvn', args, { maxBuffer: 64 * 1024 * 1024 });
    } catch (error) {
      const output = `${error.stdout ?? ''}${error.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n');
      throw new Error(`mvn could not resolve org.apache.kafka:kafka_${scala_version}:${kafka_version} (${error.code === 'ENOENT' ? 'mvn not found on PATH' : `exit ${error.code}`})\n${output}`);
    }
    const jars = readdirSync(join(staging, 'libs')).filter((name) => name.endsWith('.jar'));
    if (!jars.some((name) => name.startsWith(`kafka_${scala_version}-${kafka_version}`))) {
      throw new Error(`mvn finished but no kafka_${scala_version}-${kafka_version} jar was copied into ${join(staging, 'libs')}`);
    }
    // Whatever is in libs without a marker is a leftover of an interrupted run: replace it.
    rmSync(libs, { recursive: true, force: true });
    renameSync(join(staging, 'libs'), libs);
    writeFileSync(marker, `${JSON.stringify({ kafka_version, jars: jars.sort() }, null, 2)}\n`);
    result.downloaded = true;
    return result;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const started = Date.now();
  provision().then(
    ({ classpath, downloaded }) => {
      console.error(`kafka ${kafka_version}: ${downloaded ? 'downloaded' : 'cached'} in ${Date.now() - started} ms`);
      console.log(classpath);
    },
    (error) => {
      console.error(error.message);
      process.exit(1);
    },
  );
}
