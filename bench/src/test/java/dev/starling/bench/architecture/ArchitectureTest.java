package dev.starling.bench.architecture;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The module rules of DESIGN section 1, checked on the compiled main classes of every module. */
class ArchitectureTest {
    private static JavaClasses classes;

    @BeforeAll
    static void importClasses() {
        classes = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("dev.starling");
        // Guard against a vacuous pass: every module's classes must be on the test class path.
        for (String name : new String[] {"dev.starling.api.SparseAttention", "dev.starling.backend.reference.ReferenceBackend",
            "dev.starling.conformance.DenseOracle", "dev.starling.bench.cli.StarlingCli",
            "dev.starling.backend.cuda.CudaBackend", "dev.starling.bench.cuda.CudaBenchmark",
            "dev.starling.backend.nativecpu.NativeBackend"}) {
            if (!classes.contain(name)) {
                throw new AssertionError("ArchUnit did not import " + name);
            }
        }
    }

    @Test
    void apiDependsOnNothingButTheJdk() {
        noClasses().that().resideInAPackage("dev.starling.api..")
                .should().dependOnClassesThat().resideOutsideOfPackages("dev.starling.api..", "java..")
                .because("api has no third-party dependency and knows no backend (DESIGN section 1)")
                .check(classes);
    }

    @Test
    void backendsNeverDependOnEachOther() {
        noClasses().that().resideInAPackage("dev.starling.backend.(*)..")
                .should().dependOnClassesThat().resideInAnyPackage("dev.starling.conformance..", "dev.starling.bench..")
                .check(classes);
        com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices()
                .matching("dev.starling.backend.(*)..").should().notDependOnEachOther()
                .because("backends never depend on each other (DESIGN section 1)")
                .check(classes);
    }

    @Test
    void backendsShipNoBenchmarkCode() {
        noClasses().that().resideInAPackage("dev.starling.backend..")
                .should().dependOnClassesThat().resideInAPackage("org.openjdk.jmh..")
                .because("benchmarks live in the bench module; a backend jar carries no JMH (DESIGN section 1)")
                .check(classes);
        noClasses().that().resideInAPackage("dev.starling.backend..")
                .should().resideInAPackage("..bench..")
                .orShould().haveSimpleNameEndingWith("Benchmark")
                .because("benchmark programs live in the bench module, not in a backend's main sources")
                .check(classes);
    }

    /**
     * Plans are configured by typed options ({@code api.PlanOptions}); system properties are read only
     * as their defaults, in {@code PlanOptions.fromSystemProperties}. Two exceptions, neither of them
     * configuration: the native loader identifies the platform ({@code os.name}, {@code os.arch}) to
     * pick its library, and nd4j's availability quotes OpenBLAS's own {@code OPENBLAS_CORETYPE} in its advice.
     */
    @Test
    void backendsReadNoSystemPropertyOrEnvironment() {
        noClasses().that().resideInAPackage("dev.starling.backend..")
                .and().doNotHaveFullyQualifiedName("dev.starling.backend.nativecpu.NativeKernels")
                .and().doNotHaveFullyQualifiedName("dev.starling.backend.nd4j.Nd4jRuntime")
                .should().callMethod(System.class, "getProperty", String.class)
                .orShould().callMethod(System.class, "getProperty", String.class, String.class)
                .orShould().callMethod(System.class, "getenv", String.class)
                .orShould().callMethod(System.class, "getenv")
                .orShould().callMethod(System.class, "getProperties")
                .orShould().callMethod(Integer.class, "getInteger", String.class)
                .orShould().callMethod(Integer.class, "getInteger", String.class, int.class)
                .orShould().callMethod(Integer.class, "getInteger", String.class, Integer.class)
                .orShould().callMethod(Long.class, "getLong", String.class)
                .orShould().callMethod(Boolean.class, "getBoolean", String.class)
                .because("plans take typed options; properties are read only as defaults, in api.PlanOptions")
                .check(classes);
    }

    @Test
    void conformanceSeesOnlyTheApi() {
        noClasses().that().resideInAPackage("dev.starling.conformance..")
                .should().dependOnClassesThat().resideInAnyPackage("dev.starling.backend..", "dev.starling.bench..")
                .check(classes);
    }

    @Test
    void onlyTheSparkModuleSeesSpark() {
        noClasses().that().resideInAPackage("dev.starling..").and().resideOutsideOfPackage("dev.starling.spark..")
                .should().dependOnClassesThat().resideInAnyPackage("org.apache.spark..", "org.apache.hadoop..", "scala..")
                .because("Spark is a provided dependency of the spark module alone (DESIGN section 1)")
                .check(classes);
    }

    @Test
    void backendTypesNeverAppearInTheApi() {
        noClasses().that().resideInAPackage("dev.starling.api..")
                .should().dependOnClassesThat().resideInAnyPackage("org.nd4j..", "jcuda..", "picocli..")
                .check(classes);
    }
}
