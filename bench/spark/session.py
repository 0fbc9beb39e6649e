"""The Spark session both baselines run in: `local[N]`, the Delta and Kafka connectors (resolved
from Maven Central into the Ivy cache on first use), UTC, no UI."""
import os

DELTA_PACKAGE = "io.delta:delta-spark_2.12:3.2.1"
KAFKA_PACKAGE = "org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.3"


def spark_session(app, cores, ivy, driver_memory=None, conf=None):
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app)
        .config("spark.jars.packages", f"{DELTA_PACKAGE},{KAFKA_PACKAGE}")
        .config("spark.jars.ivy", os.path.abspath(ivy))  # Spark needs an absolute path
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    if driver_memory:
        builder = builder.config("spark.driver.memory", driver_memory)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
